//! Typed specs from short tables: a spec file names a variant (`name = "rf-rmsprop"`) and only
//! the knobs it changes; the rest comes from that variant's defaults, and a key the variant does
//! not have is refused by name instead of being ignored. The result is the same type `ember train`
//! builds from its flags.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::spec::{ModelSpec, OptimizerSpec, SchedulerSpec};

/// Keys an arm's tables may not set: they are the run's (the spec's `[train] batch_size` and its
/// `seeds`), written in for every run.
const RUN_KEYS: [&str; 2] = ["batch_size", "seed"];

/// A table that does not make a spec: the key path at fault (`optimizer.base.momentum`) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct TableError {
    /// The dotted key path at fault, e.g. `optimizer.base.momentum`.
    pub key: String,
    /// Why the table does not make a spec.
    pub message: String,
}

impl TableError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// `table` (e.g. `{ name = "sgd", momentum = 0.9 }`) as the spec it names, every key it leaves out
/// taken from `defaults(tag value)`. Nested tables that name a variant of their own (a closure
/// method's `base`) start from that variant's defaults. Errors name the key path under `what`.
fn from_table<T: DeserializeOwned>(
    what: &str,
    tag: &str,
    table: &Value,
    defaults: &dyn Fn(&str) -> Option<Value>,
) -> Result<T, TableError> {
    let named = |table: &Value, path: &str| -> Result<Value, TableError> {
        let Some(name) = table.get(tag).and_then(Value::as_str) else {
            let key = if table.is_object() {
                format!("{path}.{tag}")
            } else {
                path.to_string()
            };
            return Err(TableError::new(
                key,
                format!("needs a table with a `{tag}` (a string)"),
            ));
        };
        defaults(name)
            .ok_or_else(|| TableError::new(format!("{path}.{tag}"), format!("unknown `{name}`")))
    };
    let base = named(table, what)?;
    let mut merged = base.clone();
    merge(&mut merged, table, what, &named)?;
    serde_json::from_value(merged).map_err(|e| {
        // serde does not say which key; find the first one that alone makes the table unreadable.
        let culprit = table.as_object().and_then(|user| {
            user.keys().find(|key| {
                let mut one = base.clone();
                let single = Value::Object(Map::from_iter([(
                    (*key).clone(),
                    user[key.as_str()].clone(),
                )]));
                merge(&mut one, &single, what, &named).is_ok()
                    && serde_json::from_value::<T>(one).is_err()
            })
        });
        match culprit {
            Some(key) => TableError::new(format!("{what}.{key}"), e.to_string()),
            None => TableError::new(what, e.to_string()),
        }
    })
}

/// Writes `user`'s keys over `base`, refusing keys `base` does not have.
fn merge(
    base: &mut Value,
    user: &Value,
    path: &str,
    named: &dyn Fn(&Value, &str) -> Result<Value, TableError>,
) -> Result<(), TableError> {
    let (Some(base_map), Some(user_map)) = (base.as_object_mut(), user.as_object()) else {
        return Err(TableError::new(path, "must be a table"));
    };
    for (key, value) in user_map {
        let at = format!("{path}.{key}");
        if RUN_KEYS.contains(&key.as_str()) {
            return Err(TableError::new(
                at,
                "is set for every run from the spec ([train] batch_size, seeds); leave it out",
            ));
        }
        let Some(slot) = base_map.get_mut(key) else {
            return Err(TableError::new(
                at,
                format!("unknown key; `{path}` takes {}", known_keys(base_map)),
            ));
        };
        match (slot.is_object(), value.is_object()) {
            (true, true) => {
                // A table naming another variant (a base optimizer) starts from its defaults.
                let renamed = value.get("name").is_some() && value.get("name") != slot.get("name");
                if renamed {
                    *slot = named(value, &at)?;
                }
                merge(slot, value, &at, named)?;
            }
            _ => *slot = value.clone(),
        }
    }
    Ok(())
}

fn to_value(spec: impl Serialize) -> Value {
    serde_json::to_value(spec).expect("specs serialise")
}

fn known_keys(map: &Map<String, Value>) -> String {
    let keys: Vec<String> = map
        .keys()
        .filter(|k| !RUN_KEYS.contains(&k.as_str()))
        .map(|k| format!("`{k}`"))
        .collect();
    keys.join(", ")
}

/// An arm's `optimizer` table for runs of `batch_size` images a step.
pub fn optimizer(table: &Value, batch_size: usize) -> Result<OptimizerSpec, TableError> {
    from_table("optimizer", "name", table, &|name| {
        OptimizerSpec::named(name, batch_size).map(to_value)
    })
}

/// An arm's `scheduler` table; the learning rate has no default and must be given.
pub fn scheduler(table: &Value) -> Result<SchedulerSpec, TableError> {
    if !table.is_object() {
        return Err(TableError::new("scheduler", "must be a table"));
    }
    let required: &[&str] = match table.get("name").and_then(Value::as_str) {
        Some("plrs") => &["min_lr", "max_lr"],
        _ => &["lr"],
    };
    if let Some(missing) = required.iter().find(|key| table.get(**key).is_none()) {
        return Err(TableError::new(
            format!("scheduler.{missing}"),
            "is required (no default learning rate)",
        ));
    }
    from_table("scheduler", "name", table, &|name| {
        let mut defaults = to_value(SchedulerSpec::named(name)?);
        // `config.json` leaves a cosine's warm-up out when it is 0; a table may still set it.
        if name == "cosine" {
            defaults["warmup_steps"] = Value::from(0);
        }
        Some(defaults)
    })
}

/// A spec's `[model]` table.
pub fn model(table: &Value) -> Result<ModelSpec, TableError> {
    from_table("model", "kind", table, &|kind| {
        ModelSpec::defaults()
            .into_iter()
            .find(|m| m.kind() == kind)
            .map(to_value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_optim::RfRmsPropConfig;

    fn toml(text: &str) -> Value {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_table_fills_the_named_variants_defaults_and_takes_the_run_batch_size() {
        let spec = optimizer(&toml("name = 'rf-rmsprop'\ndamping = 1e-4"), 64).unwrap();
        let expected = RfRmsPropConfig::new(64).with_damping(1e-4);
        let OptimizerSpec::RfRmsprop(got) = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(
            serde_json::to_value(got).unwrap(),
            serde_json::to_value(expected).unwrap()
        );
    }

    #[test]
    fn a_nested_base_starts_from_its_own_defaults() {
        let spec = optimizer(
            &toml("name = 'gam'\nbase = { name = 'adamw', weight_decay = 0.05 }\ngam = { alpha = 0.2 }"),
            32,
        )
        .unwrap();
        let OptimizerSpec::Gam { base, gam } = spec else {
            panic!("{spec:?}")
        };
        let expected = OptimizerSpec::AdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.05,
        };
        assert_eq!(
            serde_json::to_value(*base).unwrap(),
            serde_json::to_value(expected).unwrap()
        );
        assert_eq!(gam.alpha, 0.2);
        assert_eq!(gam.beta, ember_optim::GamConfig::new().beta);
    }

    #[test]
    fn unknown_and_run_level_keys_are_refused_by_name() {
        let err = optimizer(&toml("name = 'sgd'\nmomentun = 0.9"), 8).unwrap_err();
        assert_eq!(err.key, "optimizer.momentun");
        assert!(err.message.contains("unknown key"), "{err}");
        assert!(
            err.message.contains("`momentum`"),
            "lists the known keys: {err}"
        );
        let err =
            optimizer(&toml("name = 'gam'\nbase = { name = 'sgd', beta = 1 }"), 8).unwrap_err();
        assert_eq!(err.key, "optimizer.base.beta");
        let err = optimizer(&toml("name = 'rf-rmsprop'\nbatch_size = 32"), 8).unwrap_err();
        assert_eq!(err.key, "optimizer.batch_size");
        assert!(err.message.contains("set for every run"), "{err}");
        let err = optimizer(&toml("name = 'adan'"), 8).unwrap_err();
        assert_eq!(err.key, "optimizer.name");
        assert!(err.message.contains("unknown `adan`"), "{err}");
        let err = optimizer(&toml("momentum = 0.9"), 8).unwrap_err();
        assert_eq!(err.key, "optimizer.name");
        let err = scheduler(&toml("name = 'cosine'\nlr = 0.1\nmin_lr = 'low'")).unwrap_err();
        assert_eq!(
            err.key, "scheduler.min_lr",
            "the key of a wrongly typed value: {err}"
        );
        let err = scheduler(&toml("name = 'cosine'\nmin_lr = 0.001")).unwrap_err();
        assert_eq!(err.key, "scheduler.lr");
        let err = model(&toml("kind = 'cnn'\nwidth = [8]")).unwrap_err();
        assert_eq!(err.key, "model.width");
        let err = model(&toml("kind = 'cnn'\nwidths = 8")).unwrap_err();
        assert_eq!(err.key, "model.widths");
    }

    #[test]
    fn scheduler_and_model_tables() {
        assert_eq!(
            scheduler(&toml("name = 'cosine'\nlr = 0.1")).unwrap(),
            SchedulerSpec::Cosine {
                lr: 0.1,
                min_lr: 0.0,
                warmup_steps: 0
            }
        );
        assert_eq!(
            model(&toml("kind = 'cnn'\nwidths = [8, 16]")).unwrap(),
            ModelSpec::Cnn {
                widths: vec![8, 16],
                convs_per_stage: 2
            }
        );
    }
}
