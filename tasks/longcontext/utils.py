from sinkbench.data.synthetic import kv_dataset, passkey_dataset  # noqa: F401
