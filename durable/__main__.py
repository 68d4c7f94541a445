"""`python -m durable`: the durable command line."""

from ._cli import main

main()
