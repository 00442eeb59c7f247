"""The email channel's transports, wired to the server: inbound mail from
the SMTP listener, IMAP polling and the inbound-parse endpoint all end in
`ingest.ingest_mail` (and so in one action); outbound mail leaves through
the outbox worker (`delivery`). Like every transport, nothing here touches
the database directly: reads go through queries, writes through actions.
"""
