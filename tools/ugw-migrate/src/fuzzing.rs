//! The migration file reader and the SQL splitter, reachable from fuzz/ only (the `fuzzing`
//! feature, never enabled by the workspace build): the fuzz targets drive the real code.

pub use crate::lint::{lint, refusals};
pub use crate::source::{Migration, load};
pub use crate::sql::{Kind, Statement, Token, ends_closed, statements, tokenize};
pub use ugw_shared::db::Engine;
