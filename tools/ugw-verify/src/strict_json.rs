//! JSON read strictly for the checks file: a key given twice in one object is refused, naming
//! its JSON path (`$.checks[0].expect`). `serde_json` keeps the last of two `expect`s silently,
//! so an assertion someone wrote would never be checked.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// `text` as a JSON value, or why not (a duplicate key names its path from `$`).
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = At("$".to_string()).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A value being read at a JSON path.
struct At(String);

impl<'de> DeserializeSeed<'de> for At {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for At {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(At(format!("{}[{}]", self.0, items.len())))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.0);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{path}: the key is given twice in one object (only one can hold)"
                )));
            }
            let value = map.next_value_seed(At(path))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        let err = parse(r#"{"checks":[{"name":"a","expect":[".x"],"expect":[".y"]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("$.checks[0].expect: the key is given twice"),
            "{err}"
        );
        let value = parse(r#"[{"a":1,"b":{"c":[true,null,1.5,"s"]}}]"#).unwrap();
        assert_eq!(
            value,
            serde_json::json!([{"a":1,"b":{"c":[true,null,1.5,"s"]}}])
        );
        assert!(parse("[1] x").is_err());
    }
}
