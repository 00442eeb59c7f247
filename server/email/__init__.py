"""The email channel's transports, wired to the server: inbound mail from
the SMTP listener, IMAP polling and the inbound-parse endpoint all end in
`ingest.ingest_mail` (and so in one action), handed the `intake.MailIntake`
the transport gathered once; outbound mail leaves through
the delivery worker (server.workers.email_delivery), which, like the
listener and the IMAP pollers, runs under server.workers: this package is
the channel's wiring, not a host of loops. Like every transport, nothing
here touches the database directly: reads go through queries, writes
through actions.
"""
