//! Checks across methods: operation ids and generated names must be unique.

use std::collections::HashMap;

use crate::errors::Errors;
use crate::model::Interface;

/// Associated constants of the generated `{Trait}Op`, which a variant must not shadow.
const GENERATED_CONSTS: [&str; 2] = ["ALL", "DESCRIPTOR"];

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
            if GENERATED_CONSTS.contains(&m.variant.to_string().as_str()) {
                errors.add(syn::Error::new(
                    m.span(),
                    format!(
                        "`{}` clashes with the generated `{}Op::{}`; rename the method",
                        m.name(),
                        self.original.ident,
                        m.variant
                    ),
                ));
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
