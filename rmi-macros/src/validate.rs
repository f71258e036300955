//! Checks across methods: operation ids and generated names must be unique.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::model::Interface;

impl Interface<'_> {
    /// Records every collision between methods in `errors`.
    pub(crate) fn validate(&self, errors: &mut Errors) {
        let mut ops = HashMap::new();
        let mut variants = HashMap::new();
        for m in &self.methods {
            if let Some(first) = ops.insert(m.op, m) {
                let hint = if m.op_pinned { "" } else { "; pin another with `#[op(id = N)]`" };
                errors.add(syn::Error::new(
                    m.op_span,
                    format!("operation id {} is already used by `{}`{hint}", m.op, first.name()),
                ));
                ops.insert(first.op, first);
            }
            if let Some(first) = variants.insert(m.variant.to_string(), m) {
                errors.add(syn::Error::new(
                    m.span(),
                    format!(
                        "`{}` and `{}` both name the operation `{}Op::{}`; rename one of them",
                        first.name(),
                        m.name(),
                        self.original.ident,
                        m.variant
                    ),
                ));
                variants.insert(first.variant.to_string(), first);
            }
        }
    }
}
