"""Fashion-MNIST and image folders through an in-memory, batch-level pipeline."""
