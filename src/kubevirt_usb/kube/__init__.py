"""The Kubernetes API boundary shared by the agent, controller, CLI and web UI: configuration
(`config`), the async client (`client`), resource types (`resources`), the error tree (`errors`)
and retry decisions (`retry`)."""
