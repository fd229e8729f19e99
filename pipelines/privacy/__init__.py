"""Privacy stage: identifiers are validated (check digits) and replaced by keyed-hash tokens."""
