"""The manifest pipeline: load YAML with ``${VAR}`` placeholders, validate against the packaged schemas."""
