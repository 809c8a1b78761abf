"""Hardware-aware architecture search: elastic supernets, latency data and predictors, search.

Train one weight-sharing supernet (`supernet.train_supernet`), measure sub-networks on each
target (`latency.collect`), fit a latency predictor (`latency.MLPPredictor`,
`latency.LookupTable`), then search for each device and budget (`search.evolve`,
`search.pareto`) without training any candidate; `pipeline` holds these steps on a run
directory. Search spaces are `frugalml.models.space.SearchSpace`s: `cnn` and `transformer`
here, any other technique's through the technique table (`frugalml.techniques`).
"""
