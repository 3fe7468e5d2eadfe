"""Django's PostgreSQL backend, with a health check that costs no round trip.

A persistent connection is checked before its first use in each request and in each
database call of a socket (CONN_HEALTH_CHECKS), so that a connection the server dropped
(a restart, ``pg_terminate_backend``, an idle timeout) is replaced instead of failing
the page. Django checks with ``SELECT 1``: a round trip on every page a member sees and on
every chat message (bench/README.md, "a chat message").

An idle connection has nothing to read unless the server has closed it: closing, the server
sends its FATAL error and shuts the socket, which turns readable. So an idle connection with
nothing to read is usable, and one with anything to read is dropped and reopened (a stray
notice costs a reconnect, never a failed page). A connection in any other state is
checked Django's way.
"""

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        # poll(), not select(): a worker holding thousands of sockets has descriptors
        # beyond select()'s 1,024.
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN)
        return not poller.poll(0)
