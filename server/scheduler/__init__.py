"""The scheduler: durable due work run inside `threadline serve`
(ARCHITECTURE.md rule 5). `runner.JobRunner` claims due `scheduled_jobs`
rows and runs each through its kind's handler (an action); `HANDLERS`
says which kinds this server runs."""
