"""Local stand-ins of Discord and Slack that the real client libraries (discord.py, slack_sdk and slack-bolt) connect
to over loopback: ``loopback.discord`` serves Discord's gateway and REST API, ``loopback.slack`` Slack's Web API,
response URLs and Socket Mode. Each is as strict as the service where a bot can get it wrong, and records what the
bot did, so the tests and the benchmarks run the production front-ends unchanged against them.

Nothing here imports Docent (``rag``, ``indexer``, ``bot``, ``bench`` or ``tests``): these are the services, not the
bot.
"""
