"""The background work of a Threadline process, in one place: each module
is one worker (an object with `name` and `async run(stop)`), `runner`
hosts a list of them with one start/stop protocol and one restart
policy, and `background` says which workers a process runs. Workers use
the channels' wiring (server.email) and actions; nothing below imports
them: only the CLI starts them."""
