from sinkbench.data.tasks import lambada as load  # noqa: F401  (custom_dataset for the YAML next to this file)
