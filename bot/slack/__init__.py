"""The Slack front-end: one module per feature (ask: mentions, follow-ups, DMs, the assistant panel and the ask
command; admin: reindex; feedback: vote buttons; assistant: suggested prompts), wired in ``app`` over the shared
``bot.services``."""
