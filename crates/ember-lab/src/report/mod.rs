//! What every report is made of: Markdown tables ([`markdown`]), line plots ([`plot`]), the
//! statistics of a comparison over seeds ([`stats`]) and where the numbers came from
//! ([`provenance`]).

pub mod markdown;
pub mod plot;
pub mod provenance;
pub mod stats;
