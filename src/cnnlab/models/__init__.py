"""The model zoo: one module per family and the registry behind `create_model`."""
