"""Hardware-aware architecture search: elastic supernets, latency data and predictors, search.

Train one weight-sharing supernet (`supernet.train_supernet`), measure sub-networks on each
target (`latency.collect`), fit a latency predictor (`latency.MLPPredictor`,
`latency.LookupTable`), then search for each device and budget (`search.evolve`,
`search.pareto`) without training any candidate. Search spaces are pluggable
(`spaces.register` / `spaces.get`).
"""
