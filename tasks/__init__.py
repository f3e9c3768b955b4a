"""lm-eval task configs of sinkbench, installed from the checkout's tasks/ folder."""
