/*
 * sdnotify.h -- readiness and shutdown notices for systemd (Type=notify).
 *
 * sdnotify_send("READY=1") once the listeners are open, "STOPPING=1" when
 * shutdown begins. Built with libsystemd (found by pkg-config) it calls
 * sd_notify(); without it, it speaks the same tiny protocol itself (one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET, '@' meaning the
 * abstract namespace), so a build without libsystemd still works under a
 * Type=notify unit. Outside systemd ($NOTIFY_SOCKET unset) it does nothing.
 *
 * Thread-safety: any thread. Never blocks for long (a datagram send).
 */
#ifndef CRAB_HTTP_SDNOTIFY_H
#define CRAB_HTTP_SDNOTIFY_H

/* Returns 1 if the notice was sent, 0 if there is no notify socket, or
 * -errno on failure (which callers may ignore: it is advisory). */
int sdnotify_send(const char *state);

#endif
