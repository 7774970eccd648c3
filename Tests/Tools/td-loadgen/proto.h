/*
 * tunneldigger control messages as the C client sends and accepts them
 * (docs/tunneldigger-protocol.md §1, vectors in §6). Everything big-endian.
 *
 * Encoders write a whole datagram into `buf` (at least TD_BUF bytes) and return
 * its length. Ordinary messages shorter than 12 bytes are padded with zeros to 12
 * (some firewalls drop tiny datagrams on port 53); reliable messages are not.
 */
#ifndef TD_LOADGEN_PROTO_H
#define TD_LOADGEN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TD_HEADER 6
#define TD_MIN_DATAGRAM 12
#define TD_BUF 288            /* 6 + 255 payload, rounded up */
#define TD_MAX_UUID 238       /* 8 + 1 + N + 8 <= 255 with tunnel id and features */

enum td_type {
    TD_COOKIE = 0x01,
    TD_PREPARE = 0x02,
    TD_ERROR = 0x03,
    TD_TUNNEL = 0x04,
    TD_KEEPALIVE = 0x05,
    TD_PMTUD = 0x06,
    TD_PMTUD_ACK = 0x07,
    TD_REL_ACK = 0x08,
    TD_PMTU_NTFY = 0x09,
    TD_USAGE = 0x0A,
    TD_LIMIT = 0x80,
};

#define TD_FEATURE_UNIQUE_SESSION_ID 0x00000001u
#define TD_ERROR_CLIENT_OTHER_SIDE 0x10  /* answer to a broker ERROR while established */
#define TD_ERROR_CLIENT_SHUTDOWN 0x11
#define TD_LIMIT_BANDWIDTH_DOWN 0x01

static inline void td_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void td_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint16_t td_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static inline uint32_t td_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Header for a payload of `len` bytes; returns the datagram length with padding. */
static inline size_t td_header(uint8_t *buf, uint8_t type, size_t len, bool pad)
{
    buf[0] = 0x80;
    buf[1] = 0x73;
    buf[2] = 0xA7;
    buf[3] = 0x01;
    buf[4] = type;
    buf[5] = (uint8_t)len;
    size_t total = TD_HEADER + len;
    if (pad && total < TD_MIN_DATAGRAM) {
        memset(buf + total, 0, TD_MIN_DATAGRAM - total);
        total = TD_MIN_DATAGRAM;
    }
    return total;
}

/* COOKIE request: 8 filler bytes, as large as the reply (no amplification). */
static inline size_t td_cookie_request(uint8_t *buf)
{
    memset(buf + TD_HEADER, 'X', 8);
    return td_header(buf, TD_COOKIE, 8, true);
}

/* PREPARE: cookie, UUID, and unless `legacy` the client tunnel id and features. */
static inline size_t td_prepare(uint8_t *buf, const uint8_t cookie[8], const char *uuid,
                                size_t uuid_len, uint32_t tunnel_id, bool legacy)
{
    uint8_t *p = buf + TD_HEADER;
    memcpy(p, cookie, 8);
    p[8] = (uint8_t)uuid_len;
    memcpy(p + 9, uuid, uuid_len);
    size_t len = 9 + uuid_len;
    if (!legacy) {
        td_put32(p + len, tunnel_id);
        td_put32(p + len + 4, TD_FEATURE_UNIQUE_SESSION_ID);
        len += 8;
    }
    return td_header(buf, TD_PREPARE, len, true);
}

static inline size_t td_keepalive(uint8_t *buf, uint32_t counter)
{
    td_put32(buf + TD_HEADER, counter);
    return td_header(buf, TD_KEEPALIVE, 4, true);
}

static inline size_t td_pmtud_ack(uint8_t *buf, uint16_t size)
{
    td_put16(buf + TD_HEADER, size);
    return td_header(buf, TD_PMTUD_ACK, 2, true);
}

static inline size_t td_error(uint8_t *buf, uint8_t reason)
{
    buf[TD_HEADER] = reason;
    return td_header(buf, TD_ERROR, 1, true);
}

/* LIMIT BANDWIDTH_DOWN, reliable (sequence number first), 14 bytes, not padded. */
static inline size_t td_limit(uint8_t *buf, uint16_t seq, uint32_t kbps)
{
    uint8_t *p = buf + TD_HEADER;
    td_put16(p, seq);
    p[2] = TD_LIMIT_BANDWIDTH_DOWN;
    p[3] = 4;
    td_put32(p + 4, kbps);
    return td_header(buf, TD_LIMIT, 8, false);
}

/*
 * Validate like the C client: at least the header, the magic, version 1, and a
 * payload length that fits the datagram. Returns the type, 0 if invalid.
 */
static inline uint8_t td_parse(const uint8_t *buf, size_t n, const uint8_t **payload, uint8_t *len)
{
    if (n < TD_HEADER || buf[0] != 0x80 || buf[1] != 0x73 || buf[2] != 0xA7 || buf[3] != 0x01)
        return 0;
    if (buf[5] > n - TD_HEADER)
        return 0;
    *payload = buf + TD_HEADER;
    *len = buf[5];
    return buf[4];
}

#endif
