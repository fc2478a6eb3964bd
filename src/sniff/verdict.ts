// The answer every protocol matcher gives on the bytes a client has sent so far. The master
// peeks (consumes nothing) and asks again when more bytes arrive; once the client has nothing
// more to send (EOF, or the sniffing time is up), a `more` counts as `no`.

/** A matcher's answer on the bytes seen so far: yes, no, or cannot tell yet. */
export type Verdict = 'yes' | 'no' | 'more';
