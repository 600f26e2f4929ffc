"""The chapter operators written from scratch: a loop version to read, a vectorised one to use."""
