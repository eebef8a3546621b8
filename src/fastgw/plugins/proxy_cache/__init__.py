"""proxy-cache: answer repeated requests from stored responses (Kong's plugin
of the same name), in each worker's memory or in Redis, with request
coalescing: while one request for a key is upstream, identical ones wait for
its answer instead of following it there."""
