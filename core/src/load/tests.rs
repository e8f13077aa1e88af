//! Linking and BTF rewriting on the committed fixtures.
