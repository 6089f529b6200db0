"""One module per thing that occupies GPU memory; each states its formula and its source."""
