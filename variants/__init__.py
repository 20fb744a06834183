"""fpufuzz's variants: one module per patch. See variants/README.md and docs/variants.md."""
