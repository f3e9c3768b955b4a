"""Hand-made records and boards with known numbers, for sinkbench's tests and benchmarks (and for anyone testing
a tool that reads sinkbench records): sinkbench.testing.records, sinkbench.testing.boards."""
