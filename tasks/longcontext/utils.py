from sinkbench.synthetic import kv_dataset, passkey_dataset  # noqa: F401
