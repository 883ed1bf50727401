"""What liner reports: the error codes of ``last_error_code()``, the status event kinds of
``Client.set_status_callback``, and :class:`LinerError`.

The numbers are those of include/liner.h (``LNR_*``), which are liner_broker 1.4's: programs
written for liner_broker compare against the same values.
"""

# Error codes: the LNR_* values of include/liner.h.
OK = 0
ERR_NOT_RUNNING = 1          #: the call needs a running client (run first)
ERR_ALREADY_RUNNING = 2      #: the call needs a stopped client
ERR_SELF_TOPIC = 3           #: the topic is the client's own source topic
ERR_INTERNAL_TOPIC = 4       #: the topic is reserved by liner
ERR_NO_ADDR = 5              #: no peer serves the topic
ERR_BIND = 6                 #: the listen address cannot be resolved or bound
ERR_STORE = 7                #: Redis is unreachable or answered with an error
ERR_INVALID_ARG = 8          #: None / empty / invalid UTF-8 / oversize argument, closed client
ERR_CLEAR_WHILE_RUNNING = 9  #: clear_* needs a client that is not running
ERR_STARTUP = 10             #: the client could not start its threads or listener
ERR_BUSY = 11                #: a per-peer send queue is full: retry later

# Status event kinds: the LNR_* kinds of include/liner.h, as liner_broker 1.4 numbers them.
# "Topics the client uses" are those it sent to, refreshed, subscribed to or owns.
PEER_CONNECTED = 1        #: a peer joined a topic the client uses, or a connection opened
PEER_DISCONNECTED = 2     #: a peer left such a topic, or its connection ended
PEER_SUBSCRIBED = 3       #: a peer subscribed to a topic the client uses
PEER_UNSUBSCRIBED = 4     #: a peer unsubscribed from a topic the client uses
SENDER_ROUTE_LOST = 5     #: connect failed, or a connection closed with messages in flight
SENDER_STORE_ERROR = 6    #: the sender could not read or write Redis
SENDER_SEND_ERROR = 7     #: a write to a peer failed, or waiting messages were dropped
LISTENER_STORE_ERROR = 8  #: the listener could not read or write Redis
SENDER_BUSY = 9           #: a peer's send queue is full (sends fail with ERR_BUSY)
SENDER_WRITABLE = 10      #: liner: that queue has room again
STORE_RECOVERED = 11      #: liner: Redis answers the sender or listener again (after 6 or 8)
# A Redis outage is told once per side: one SENDER_STORE_ERROR / LISTENER_STORE_ERROR when the
# connection is lost, then STORE_RECOVERED when it works again.


class LinerError(Exception):
    """An error reported by liner.

    Attributes:
        code: one of the ``ERR_*`` constants (int).
        message: the reason, as text.
    """

    def __init__(self, code, message):
        super().__init__(message)
        self.code = int(code)
        self.message = str(message)

    def __repr__(self):
        return f"LinerError(code={self.code}, message={self.message!r})"
