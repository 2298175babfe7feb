"""The protocol document: a protocol folder's files as the model later stages read.

By job: `yamlsource` (reading files, positioned YAML), `plain` (nodes to plain values and
back), `schema` (located JSON Schema validation, for every file format), `names`,
`consistency` (what the protocol schema cannot say), `build` (the model), `loader` (the three
passes of a protocol file), `model`, `lock` (the lock file), `changes` (ids between
versions) and `history` (versions, release verification and the history's rules).
"""
