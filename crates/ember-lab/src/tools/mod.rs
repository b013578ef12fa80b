//! The lab's single-purpose tools, each behind one `ember` command: the learning-rate range test
//! ([`lr_find`]), benchmarks and the layer profile ([`bench`]), the SignGD paper's study
//! ([`signgd_study`]), text sampling from a language model ([`sample`]) and a language-modelling
//! run's replay kit for the PyTorch anchor ([`replay`]).

pub mod bench;
pub mod lr_find;
pub mod replay;
pub mod sample;
pub mod signgd_study;
