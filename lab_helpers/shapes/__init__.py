"""Inference shapes as notebook 14 measures them: online requests, a batch Job and a stream of events.

`scoring` is the one client call all three make (raw records in, labels out, over V1), `objects`
reads and writes the batch files (file:// or s3://), `batch_scorer` is the Job's program,
`streaming` replays a bounded stream of events one by one or in micro-batches, and `measure`
turns timings into the table, the cost per row and the latency-vs-throughput plot.
"""
