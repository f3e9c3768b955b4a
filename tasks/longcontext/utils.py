from sinkbench.data.synthetic import kv_dataset, passkey_dataset  # noqa: F401  (custom_dataset of the YAMLs here)
