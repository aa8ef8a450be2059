/*
** http_parse.c: the HTTP/1.1 message parser of module "http.core", a pull
** parser over llhttp (its Lua face is http.c). Debian's llhttp 8.1.0
** accepts several smuggling vectors (bare CR, obs-fold, odd header names,
** any two bytes after chunk data), so every byte first passes a strict
** scanner here and llhttp only sees bytes the scanner accepted. The two
** must agree on where each head, chunk and trailer section ends, or the
** message is refused with a 400.
*/
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_parse.h"

/* Marks the parser dead with the first error found; later ones are echoes. */
static int fail(parser_t *P, int status, const char *reason) {
  if (P->st != S_DEAD) {
    P->st = S_DEAD;
    P->status = status;
    P->reason = reason;
  }
  return -1;
}

/* fail() with a formatted reason, kept in the parser. */
static int failf(parser_t *P, int status, const char *fmt, ...) {
  va_list ap;
  if (P->st == S_DEAD)         /* rbuf may hold the first reason */
    return -1;
  va_start(ap, fmt);
  vsnprintf(P->rbuf, sizeof P->rbuf, fmt, ap);
  va_end(ap);
  return fail(P, status, P->rbuf);
}

static int grow(char **buf, size_t *cap, size_t need) {
  size_t n = *cap ? *cap : WL_HTTP_BLOCK;
  char *b;
  while (n < need)
    n *= 2;
  b = *cap == 0 && n == WL_HTTP_BLOCK ? wl_http_block() : realloc(*buf, n);
  if (b == NULL)
    return -1;
  *buf = b;
  *cap = n;
  return 0;
}

/* ---- llhttp callbacks: copy spans, record events, never touch Lua ---- */

static int append(llhttp_t *h, const char *at, size_t n) {
  parser_t *P = (parser_t *)h;
  if (n > P->acap - P->alen && grow(&P->arena, &P->acap, P->alen + n) < 0)
    return fail(P, 503, "out of memory");
  if (n > 0)
    memcpy(P->arena + P->alen, at, n);
  P->alen += n;
  return 0;
}

static int on_message_begin(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  P->alen = P->span = P->nf = P->url_len = 0;
  P->ntrail = (size_t)-1;
  return 0;
}

static int on_url_complete(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  P->url = P->span;
  P->url_len = P->alen - P->span;
  P->span = P->alen;
  return 0;
}

static int on_field_complete(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  P->fname = P->span;
  P->fnlen = P->alen - P->span;
  P->span = P->alen;
  return 0;
}

static int on_value_complete(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  field_t *f;
  if (P->nf == P->fcap) {
    size_t n = P->fcap ? 2 * P->fcap : WL_HTTP_BLOCK / sizeof(field_t);
    field_t *nb = P->fcap ? realloc(P->fields, n * sizeof *nb)
                          : wl_http_block();
    if (nb == NULL)
      return fail(P, 503, "out of memory");
    P->fields = nb;
    P->fcap = n;
  }
  f = &P->fields[P->nf++];
  f->name = P->fname;
  f->nlen = P->fnlen;
  f->value = P->span;
  f->vlen = P->alen - P->span;
  while (f->vlen > 0 && (P->arena[f->value + f->vlen - 1] == ' ' ||
                         P->arena[f->value + f->vlen - 1] == '\t'))
    f->vlen--;                 /* llhttp keeps trailing OWS, RFC 9110 not */
  P->span = P->alen;
  return 0;
}

/* Request rules llhttp leaves to us: Host (RFC 9112 3.2) and a
   Transfer-Encoding we can decode (exactly one "chunked", 9112 6.1). */
static int check_request(parser_t *P) {
  llhttp_t *h = &P->h;
  size_t i, host = 0, te = 0;
  if (h->http_major != 1)
    return failf(P, 505, "Invalid HTTP version (%d.%d)", h->http_major,
                 h->http_minor);
  for (i = 0; i < P->nf; i++) {
    const field_t *f = &P->fields[i];
    const char *name = P->arena + f->name, *v = P->arena + f->value;
    if (WL_HTTP_IEQ(name, f->nlen, "host"))
      host++;
    else if (WL_HTTP_IEQ(name, f->nlen, "transfer-encoding")) {
      if (++te > 1)
        return fail(P, 400, "More than one Transfer-Encoding");
      if (!WL_HTTP_IEQ(v, f->vlen, "chunked"))
        return fail(P, 400, "Unsupported Transfer-Encoding");
    } else if (WL_HTTP_IEQ(name, f->nlen, "expect") && h->http_minor >= 1)
      P->expect = WL_HTTP_IEQ(v, f->vlen, "100-continue");
  }
  if (host > 1)
    return fail(P, 400, "More than one Host header");
  if (host == 0 && h->http_minor >= 1)
    return fail(P, 400, "HTTP/1.1 request without Host");
  return 0;
}

static int on_headers_complete(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  int chunked;
  P->ev = EV_HEAD;
  P->ntrail = P->nf;
  P->expect = 0;
  if (h->type == HTTP_REQUEST) {
    if (check_request(P) < 0)
      return -1;
  } else if (P->head_response || h->status_code / 100 == 1 ||
             h->status_code == 204 || h->status_code == 304) {
    h->flags |= F_SKIPBODY;    /* what returning 1 does; we must pause */
  }
  /* the body framing llhttp__after_headers_complete() will choose */
  chunked = (h->flags & F_CHUNKED) && !(h->flags & F_SKIPBODY) &&
            !(h->upgrade && h->type == HTTP_REQUEST &&
              h->method == HTTP_CONNECT);
  P->clen = (h->flags & F_CONTENT_LENGTH) ? h->content_length : 0;
  if (!(h->flags & F_SKIPBODY) && !chunked && P->clen > P->max_body)
    return fail(P, 413, "Content-Length exceeds the body size limit");
  P->keep_alive = llhttp_should_keep_alive(h);
  P->upgrade = h->upgrade;
  P->st = chunked ? S_CSIZE : S_BODY;
  P->body_total = 0;
  /* A request without a body (most) ends with its head: llhttp runs on
     to on_message_complete in this same run, instead of a second run of
     no bytes after the pause (see run_event). An upgrade keeps the pause:
     settle() handles what follows it. */
  P->head_end = h->type == HTTP_REQUEST && !h->upgrade &&
                !(h->flags & (F_CHUNKED | F_CONTENT_LENGTH |
                              F_TRANSFER_ENCODING));
  return P->head_end ? 0 : HPE_PAUSED;
}

static int on_body(llhttp_t *h, const char *at, size_t n) {
  parser_t *P = (parser_t *)h;
  int over = 0;
  if (P->st == S_BODY) {       /* chunk sizes were counted by the scanner */
    if (n > P->max_body - P->body_total) {
      n = (size_t)(P->max_body - P->body_total);
      over = 1;                /* the bytes up to the limit still go out */
    }
    P->body_total += n;
  }
  if (P->body_len == 0)
    P->body_at = at;
  else if (P->body_at + P->body_len != at)
    return fail(P, 400, "Malformed body framing");
  P->body_len += n;
  return over ? fail(P, 413, "Body exceeds the size limit") : 0;
}

static int on_chunk_header(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  if (h->content_length != P->csize)
    return fail(P, 400, "Malformed chunk size");
  return 0;
}

static int on_message_complete(llhttp_t *h) {
  parser_t *P = (parser_t *)h;
  if (!P->head_end)            /* else the run's event stays EV_HEAD */
    P->ev = EV_END;
  P->closing = !llhttp_should_keep_alive(h);
  P->end_paused = 1;
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
  .on_message_begin = on_message_begin,
  .on_url = append,
  .on_status = append,
  .on_header_field = append,
  .on_header_value = append,
  .on_headers_complete = on_headers_complete,
  .on_body = on_body,
  .on_message_complete = on_message_complete,
  .on_url_complete = on_url_complete,
  .on_status_complete = on_url_complete,
  .on_header_field_complete = on_field_complete,
  .on_header_value_complete = on_value_complete,
  .on_chunk_header = on_chunk_header,
};

/* ---- the scanner ---- */

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

/* A control byte no start line or field value may carry (HTAB aside). */
static int is_ctl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

static void reset_scanner(parser_t *P, int st) {
  P->st = st;
  P->lf_ok = P->trailers = 0;
  P->line_len = P->sect_bytes = P->nfields = 0;
  P->method_st = M_IN;
  P->mlen = 0;
}

/* The scanner only notes its error: llhttp still runs up to the bad byte,
   so whichever finds the first fault wins, however the input is split. */
#define ERR(status, why) \
  do { *stop = (const char *)s; P->sstatus = status; P->sreason = why; \
       return SC_ERROR; } while (0)

/* One start-line byte for the copy kept for logs. */
static int keep_line_byte(parser_t *P, unsigned char c) {
  if (P->llen == P->lcap && grow(&P->line, &P->lcap, P->llen + 1) < 0)
    return -1;
  P->line[P->llen++] = (char)c;
  return 0;
}

/* Scanner pieces: each takes the byte at *sp in a state of its part of
   the message, may move *sp over a run of plain bytes (to its last byte),
   and returns SC_GO to go on or what scan() returns. */
enum { SC_GO = -1 };

/* The start line (request or status line), after any empty lines. */
static int scan_start_line(parser_t *P, const unsigned char **sp,
                           const unsigned char *e, const char **stop) {
  const unsigned char *s = *sp;
  unsigned char c = *s;
  int req = P->h.type == HTTP_REQUEST;
  switch (P->st) {
  case S_START:                /* empty lines before a message are skipped */
    if (c == '\r') { P->st = S_START_CR; break; }
    if (c == '\n') { P->lf_ok = 0; break; }
    P->st = S_LINE;
    P->llen = 0;
    P->later_minor = P->line_done = 0;
    /* fall through */
  case S_LINE:
    if (P->method_st != M_IN && c >= 0x20 && c != 0x7f) {
      /* fast path: a run of plain bytes, copied and counted at once */
      const unsigned char *q = s;
      size_t n;
      while (q < e && *q >= 0x20 && *q != 0x7f)
        q++;
      n = (size_t)(q - s);
      if (n > P->max_line - P->line_len)
        n = P->max_line - P->line_len + 1;  /* up to the first too many */
      if (n > P->lcap - P->llen &&
          grow(&P->line, &P->lcap, P->llen + n) < 0)
        ERR(503, "out of memory");
      if (P->line_len + n > P->max_line) {
        s += n - 1;
        ERR(414, req ? "Request line too long" : "Status line too long");
      }
      memcpy(P->line + P->llen, s, n);
      P->llen += n;
      P->line_len += n;
      s += n - 1;
      break;
    }
    /* a request line that ends inside its method ("HELLO\r\n") is
       decided now, or the verdict would wait for bytes never coming */
    if (req && (c == '\r' || c == '\n') && P->method_st == M_IN)
      P->method_st = M_BAD;
    if (c == '\r') { P->st = S_LINE_CR; break; }
    if (c == '\n') { P->lf_ok = 0; P->st = S_FIELD; P->line_done = 1; break; }
    if (is_ctl(c) || (req && c == '\t'))  /* llhttp takes HTAB in URLs */
      ERR(400, req ? "Control character in request line"
                   : "Control character in status line");
    if (++P->line_len > P->max_line)
      ERR(414, req ? "Request line too long" : "Status line too long");
    if (P->method_st == M_IN) {
      if (wl_http_tchar[c]) P->mlen++;
      else P->method_st = (c == ' ' && P->mlen > 0) ? M_SP : M_BAD;
    }
    if (keep_line_byte(P, c) < 0)
      ERR(503, "out of memory");
    break;
  default:                     /* S_START_CR, S_LINE_CR */
    if (c != '\n')
      ERR(400, "CR not followed by LF");
    if (P->st == S_LINE_CR)
      P->line_done = 1;
    P->st = P->st == S_START_CR ? S_START : S_FIELD;
    break;
  }
  *sp = s;
  return SC_GO;
}

/* A field line of the head or a trailer section, or the empty line that
   ends the section: there llhttp must pause too (SC_SYNC). */
static int scan_field(parser_t *P, const unsigned char **sp,
                      const unsigned char *e, const char **stop) {
  const unsigned char *s = *sp;
  unsigned char c = *s;
  switch (P->st) {
  case S_FIELD:                /* start of a field line, or the empty line */
    if (++P->sect_bytes > P->max_header_bytes)
      goto too_large;
    if (c == '\r') { P->st = S_END_CR; break; }
    if (c == '\n') { P->lf_ok = 0; goto section_end; }
    if (c == ' ' || c == '\t')
      ERR(400, "Obsolete line folding");
    if (c == ':')
      ERR(400, "Empty header name");
    if (!wl_http_tchar[c])
      ERR(400, "Invalid character in header name");
    if (++P->nfields > P->max_headers)
      ERR(431, P->trailers ? "Too many trailer fields"
                           : "Too many header fields");
    P->st = S_NAME;
    break;
  case S_NAME:
    if (wl_http_tchar[c]) {    /* fast path: the rest of the name */
      const unsigned char *q = s;
      while (q < e && wl_http_tchar[*q])
        q++;
      if ((size_t)(q - s) > P->max_header_bytes - P->sect_bytes) {
        s += P->max_header_bytes - P->sect_bytes;
        goto too_large;
      }
      P->sect_bytes += (size_t)(q - s);
      s = q - 1;
      break;
    }
    if (++P->sect_bytes > P->max_header_bytes)
      goto too_large;
    if (c == ':') { P->st = S_VALUE; break; }
    if (c == ' ' || c == '\t')
      ERR(400, "Whitespace in header name");
    if (!wl_http_tchar[c])
      ERR(400, "Invalid character in header name");
    break;
  case S_VALUE:
    if ((c >= 0x20 && c != 0x7f) || c == '\t') {  /* fast path, as above */
      const unsigned char *q = s;
      while (q < e && ((*q >= 0x20 && *q != 0x7f) || *q == '\t'))
        q++;
      if ((size_t)(q - s) > P->max_header_bytes - P->sect_bytes) {
        s += P->max_header_bytes - P->sect_bytes;
        goto too_large;
      }
      P->sect_bytes += (size_t)(q - s);
      s = q - 1;
      break;
    }
    if (++P->sect_bytes > P->max_header_bytes)
      goto too_large;
    if (c == '\r') { P->st = S_VALUE_CR; break; }
    if (c == '\n') { P->lf_ok = 0; P->st = S_FIELD; break; }
    if (is_ctl(c))
      ERR(400, "Control character in header value");
    break;
  case S_VALUE_CR:
    if (++P->sect_bytes > P->max_header_bytes)
      goto too_large;
    if (c != '\n')
      ERR(400, "CR not followed by LF");
    P->st = S_FIELD;
    break;
  default:                     /* S_END_CR */
    /* "\r\n\r" then not "\n": CVE-2023-30589 */
    if (c != '\n')
      ERR(400, "CR not followed by LF");
    if (++P->sect_bytes > P->max_header_bytes)
      goto too_large;
  section_end:
    /* llhttp must pause right here: on_headers_complete sets the body
       state; a trailer section waits in S_TEND for the message end */
    *stop = (const char *)s + 1;
    P->sync_end = 1;
    if (P->trailers)
      P->st = S_TEND;
    return SC_SYNC;
  }
  *sp = s;
  return SC_GO;
too_large:
  ERR(431, P->trailers ? "Trailer section too large"
                       : "Header section too large");
}

/* Chunked framing: size lines, extensions, chunk data and its CRLF. The
   last chunk hands over to scan_field for the trailer section. */
static int scan_chunked(parser_t *P, const unsigned char **sp,
                        const unsigned char *e, const char **stop) {
  const unsigned char *s = *sp;
  unsigned char c = *s;
  switch (P->st) {
  case S_CSIZE:
    if (hexval(c) < 0)
      ERR(400, "Invalid chunk size");
    P->csize = (uint64_t)hexval(c);
    P->st = S_CSIZE_D;
    break;
  case S_CSIZE_D:
    if (hexval(c) >= 0) {
      if (P->csize >> 59)
        ERR(400, "Chunk size too large");
      P->csize = P->csize * 16 + (uint64_t)hexval(c);
      break;
    }
    if (P->csize > P->max_body - P->body_total)
      ERR(413, "Chunked body exceeds the size limit");
    if (c == ';') { P->st = S_CEXT; P->ext_len = 1; break; }
    if (c == '\r') { P->st = S_CLINE_CR; break; }
    ERR(400, c == '\n' ? "Bare LF in chunk line"
                       : "Invalid chunk size");
  case S_CEXT:
    if (c == '\r') { P->st = S_CLINE_CR; break; }
    if (c == '\n')             /* "2;\nxx": the chunked smuggling payload */
      ERR(400, "Bare LF in chunk extension");
    if (is_ctl(c))
      ERR(400, "Control character in chunk extension");
    if (++P->ext_len > P->max_chunk_ext)
      ERR(400, "Chunk extension too long");
    break;
  case S_CLINE_CR:
    if (c != '\n')
      ERR(400, "Bare CR in chunk line");
    P->body_total += P->csize;
    if (P->csize == 0) {       /* last chunk: a trailer section follows */
      P->trailers = 1;
      P->sect_bytes = P->nfields = 0;
      P->st = S_FIELD;
    } else {
      P->cleft = P->csize;
      P->st = S_CDATA;
    }
    break;
  case S_CDATA: {              /* one chunk per llhttp run: one body span */
    size_t n = (size_t)(e - s);
    if ((uint64_t)n > P->cleft)
      n = (size_t)P->cleft;
    P->cleft -= n;
    s += n;
    if (P->cleft > 0) {
      *stop = (const char *)e;
      return SC_MORE;
    }
    P->st = S_CDATA_CR;
    *stop = (const char *)s;
    P->sync_end = 0;
    return SC_SYNC;
  }
  case S_CDATA_CR:             /* llhttp 8.1 would skip any two bytes here */
    if (c != '\r')
      ERR(400, "Missing CRLF after chunk data");
    P->st = S_CDATA_LF;
    break;
  default:                     /* S_CDATA_LF */
    if (c != '\n')
      ERR(400, "Missing CRLF after chunk data");
    P->st = S_CSIZE;
    break;
  }
  *sp = s;
  return SC_GO;
}

/* Scans [p, end) from the current state. Sets *stop to where llhttp may
   run to, and says why it stopped there. */
static int scan(parser_t *P, const char *p, const char *end,
                const char **stop) {
  const unsigned char *s = (const unsigned char *)p;
  const unsigned char *e = (const unsigned char *)end;
  int r;
  for (; s < e; s++) {
    /* A bare LF ending a head line: llhttp 8.1 takes it only after the
       start line, so it is handed a CR first, once (lf_ok). Body framing
       (chunk lines, trailers) must use CRLF: no smuggling room there. */
    if (*s == '\n' && !P->lf_ok && (P->st == S_START || P->st == S_LINE ||
                                    P->st == S_FIELD || P->st == S_VALUE)) {
      if (P->trailers)
        ERR(400, "Bare LF in trailer section");
      P->lf_ok = 1;
      *stop = (const char *)s;
      return SC_INJECT;
    }
    switch (P->st) {
    case S_START: case S_START_CR: case S_LINE: case S_LINE_CR:
      r = scan_start_line(P, &s, e, stop);
      break;
    case S_FIELD: case S_NAME: case S_VALUE: case S_VALUE_CR: case S_END_CR:
      r = scan_field(P, &s, e, stop);
      break;
    case S_BODY:
      *stop = end;
      return SC_MORE;
    case S_CSIZE: case S_CSIZE_D: case S_CEXT: case S_CLINE_CR:
    case S_CDATA: case S_CDATA_CR: case S_CDATA_LF:
      r = scan_chunked(P, &s, e, stop);
      break;
    default:                   /* S_TEND: llhttp did not end the message */
      ERR(400, "Malformed message framing");
    }
    if (r != SC_GO)
      return r;
  }
  *stop = end;
  return SC_MORE;
}

/* ---- driving llhttp ---- */

/* Turns an llhttp error into a status. HTTP/2+ gets 505 as in Python. */
static void llhttp_failed(parser_t *P, llhttp_errno_t err) {
  const char *why = llhttp_get_error_reason(&P->h);
  if (P->st == S_DEAD)         /* one of our callbacks refused */
    return;
  if (err == HPE_INVALID_VERSION && P->h.type == HTTP_REQUEST &&
      why && strcmp(why, "Invalid HTTP version") == 0 &&
      P->h.http_major >= 2) {  /* both digits were read: a well-formed one */
    failf(P, 505, "Invalid HTTP version (%d.%d)", P->h.http_major,
          P->h.http_minor);
    return;
  }
  failf(P, 400, "%s", why ? why : llhttp_errno_name(err));
}

/* An unknown method that is a valid token followed by a space gets 501,
   as in Python; llhttp refuses it at its first unknown letter, so the
   verdict waits for the scanner. Returns 0 while undecided. */
static int method_verdict(parser_t *P, int sc) {
  if (P->method_st == M_IN && sc != SC_ERROR && sc != SC_INJECT)
    return 0;
  if (P->method_st == M_SP) {
    failf(P, 501, "Unsupported method ('%.*s')",
          (int)(P->mlen > 40 ? 40 : P->mlen), P->line);
  } else if (sc == SC_ERROR && P->method_st == M_IN) {
    fail(P, P->sstatus, P->sreason);
  } else {
    fail(P, 400, "Invalid method");
  }
  return 1;
}

static void end_message(parser_t *P) {
  reset_scanner(P, P->closing ? S_CLOSED : S_START);
}

/* Lets llhttp take the steps that need no bytes after one of our pauses
   (a bodyless message ends, an upgrade pause), before the scanner moves
   on: afterwards llhttp waits for bytes exactly where the scanner does. */
static int settle(parser_t *P, const char *p) {
  llhttp_errno_t err;
  P->paused = P->end_paused = 0;
  P->ev = EV_MORE;
  llhttp_resume(&P->h);
  while ((err = llhttp_execute(&P->h, p, 0)) == HPE_PAUSED_UPGRADE)
    llhttp_resume_after_upgrade(&P->h);
  if (err == HPE_PAUSED) {
    P->paused = 1;
    if (P->ev != EV_END || P->st != S_BODY) {
      fail(P, 400, "Malformed message framing");
      return EV_ERROR;
    }
    end_message(P);
    return EV_END;
  }
  if (err != HPE_OK) {
    llhttp_failed(P, err);
    return EV_ERROR;
  }
  return EV_MORE;
}

/* Not an event: the run goes on (internal to the pieces below). */
enum { EV_GO = -1 };

/* What is due before any byte is scanned: the error of a dead parser, the
   end that follows a body, nothing on a closed connection, the steps
   llhttp takes after a pause. EV_GO when nothing is. */
static int pending_event(parser_t *P, const char *p, const char *end,
                         const char **next) {
  int ev;
  if (P->st == S_DEAD)
    return EV_ERROR;
  if (P->pending_end) {
    P->pending_end = 0;
    return EV_END;
  }
  if (P->st == S_CLOSED) {     /* the peer must close; llhttp is not run */
    *next = end;
    return EV_MORE;
  }
  if (P->paused && P->end_paused && P->h.type == HTTP_REQUEST &&
      !P->h.upgrade) {
    /* paused at a message end: the steps llhttp takes after it (back to
       a message start) need no bytes, and it takes them on the next
       bytes as well as in a run of none: no run here */
    llhttp_resume(&P->h);
    P->paused = P->end_paused = 0;
    return EV_GO;
  }
  if (P->paused && (ev = settle(P, p)) != EV_MORE)
    return ev;
  return EV_GO;
}

/* llhttp refused the method: the scanner decides between 501 and 400,
   once it has seen enough of the line; until then, more input. */
static int await_method_verdict(parser_t *P, int sc, const char *end,
                                const char **next) {
  if (method_verdict(P, sc))
    return EV_ERROR;
  *next = end;
  return EV_MORE;
}

/* RFC 9112 2.3: a request of a later HTTP/1.x is processed as the highest
   minor version the server implements, as Python serves it; llhttp 8.1
   refuses anything but 1.0 and 1.1. When it refused a well-formed
   "HTTP/1.D" (D 2..9) that ends the request line (or the input so far:
   llhttp checks on the digit), it starts the message again from our copy
   of the line with "HTTP/1.1", and goes on with the input after it.
   Returns llhttp's verdict on [at, stop). */
static llhttp_errno_t later_minor(parser_t *P, const char *stop) {
  const char *at = llhttp_get_error_pos(&P->h), *v;
  llhttp_errno_t err;
  if (P->h.type != HTTP_REQUEST || P->h.http_major != 1 || P->llen < 9)
    return HPE_INVALID_VERSION;
  v = P->line + P->llen - 8;
  if (v[-1] != ' ' || memcmp(v, "HTTP/1.", 7) != 0 || v[7] < '2' ||
      v[7] > '9' || at == NULL || at > stop ||
      (at < stop && *at != '\r' && *at != '\n'))
    return HPE_INVALID_VERSION;
  llhttp_reset(&P->h);
  if ((err = llhttp_execute(&P->h, P->line, P->llen - 1)) != HPE_OK ||
      (err = llhttp_execute(&P->h, "1", 1)) != HPE_OK)
    return err;
  P->later_minor = v[7] - '0';
  return llhttp_execute(&P->h, at, (size_t)(stop - at));
}

/* Runs llhttp over [p, stop), the bytes the scanner accepted; *done is
   where it stopped. EV_GO, or the event an llhttp error makes: the body
   bytes before it (the 413 follows), the error, a method verdict. */
static int execute(parser_t *P, int sc, const char *p, const char *stop,
                   const char *end, const char **done, const char **next) {
  llhttp_errno_t err;
  P->ev = EV_MORE;
  P->body_len = 0;
  err = llhttp_execute(&P->h, p, (size_t)(stop - p));
  if (err == HPE_INVALID_VERSION)
    err = later_minor(P, stop);
  *done = stop;
  if (err == HPE_PAUSED) {
    *done = llhttp_get_error_pos(&P->h);
    P->paused = 1;
  } else if (err == HPE_INVALID_METHOD && P->h.type == HTTP_REQUEST) {
    P->bad_method = 1;
    return await_method_verdict(P, sc, end, next);
  } else if (err != HPE_OK) {
    llhttp_failed(P, err);
    if (P->body_len == 0)
      return EV_ERROR;
    *next = P->body_at + P->body_len;
    return EV_BODY;            /* the body up to max_body, then the 413 */
  }
  return EV_GO;
}

/* llhttp must pause exactly where the scanner saw a head or trailer
   section end; anything else means the two read different framing, and
   the parser dies. */
static void check_framing(parser_t *P, int sc, const char *done,
                          const char *stop) {
  int bad;
  if (P->ev == EV_HEAD)
    bad = !(sc == SC_SYNC && P->sync_end && done == stop);
  else if (P->ev == EV_END)
    bad = P->st == S_TEND ? done != stop : P->st != S_BODY;
  else
    bad = sc == SC_SYNC && P->sync_end;
  if (bad && P->h.method == HTTP_PRI && P->h.http_major == 2)
    failf(P, 505, "Invalid HTTP version (2.0)");  /* the h2 preface */
  else if (bad)
    fail(P, 400, "Malformed message framing");
}

/* The event a run made once the framing agreed; a body comes before the
   end it reached (pending_end). EV_GO: none, scanning goes on. */
static int run_event(parser_t *P, int sc) {
  if (P->ev == EV_HEAD) {
    if (P->head_end) {         /* the message ended too: its end is next */
      P->head_end = 0;
      end_message(P);
      P->pending_end = 1;
    }
    return EV_HEAD;
  }
  if (P->ev == EV_END)
    end_message(P);
  if (P->body_len > 0) {
    P->pending_end = P->ev == EV_END;
    return EV_BODY;
  }
  if (P->ev == EV_END)
    return EV_END;
  if (sc == SC_ERROR) {
    fail(P, P->sstatus, P->sreason);
    return EV_ERROR;
  }
  return EV_GO;
}

/* Runs until one event is ready. *next: where the caller continues. Each
   turn: what is pending, then the scanner, then llhttp over what the
   scanner accepted, then the two must agree. */
int wl_hp_run(parser_t *P, const char *p, const char *end,
               const char **next) {
  for (;;) {
    const char *stop, *done;
    int sc, ev;
    *next = p;
    if ((ev = pending_event(P, p, end, next)) != EV_GO)
      return ev;
    sc = scan(P, p, end, &stop);
    if (P->bad_method)         /* llhttp gave up; only the verdict is left */
      return await_method_verdict(P, sc, end, next);
    if ((ev = execute(P, sc, p, stop, end, &done, next)) != EV_GO)
      return ev;
    check_framing(P, sc, done, stop);
    if (P->st == S_DEAD)
      return EV_ERROR;
    if (sc == SC_INJECT && P->ev == EV_MORE) {   /* the CR of a bare LF */
      static const char cr[] = "\r";
      llhttp_errno_t err = llhttp_execute(&P->h, cr, 1);
      if (err == HPE_INVALID_VERSION)
        err = later_minor(P, cr + 1);
      if (err != HPE_OK) {
        llhttp_failed(P, err);
        return EV_ERROR;
      }
    }
    *next = done;
    if ((ev = run_event(P, sc)) != EV_GO)
      return ev;
    if (done == end)
      return EV_MORE;
    p = done;
  }
}

/* At EOF: ends a close-delimited body, refuses a message cut short.
   EV_MORE when the stream ended between messages. */
int wl_hp_eof(parser_t *P) {
  static const char none[1] = "";
  const char *next;
  int ev = wl_hp_run(P, none, none, &next);
  if (ev == EV_MORE && P->st == S_BODY && llhttp_message_needs_eof(&P->h)) {
    P->ev = EV_MORE;
    if (llhttp_finish(&P->h) == HPE_PAUSED && P->ev == EV_END) {
      P->paused = 1;
      P->closing = 1;
      end_message(P);
      ev = EV_END;
    }
  }
  if (ev == EV_MORE && P->st != S_START && P->st != S_CLOSED) {
    if (P->bad_method)
      method_verdict(P, SC_INJECT);
    fail(P, 400, "Connection closed mid-message");
    ev = EV_ERROR;
  }
  return ev;
}

void wl_hp_reset(parser_t *P) {
  llhttp_init(&P->h, P->h.type, &settings);
  reset_scanner(P, S_START);
  P->paused = P->pending_end = P->closing = P->bad_method = 0;
  P->end_paused = P->head_end = 0;
  P->head_response = 0;
  P->nf = P->alen = P->url_len = P->llen = 0;
  P->later_minor = P->line_done = 0;
  P->ntrail = (size_t)-1;
  P->body_len = 0;
  P->status = 0;
  P->reason = NULL;
}

void wl_hp_free(parser_t *P) {
  wl_http_unblock(P->arena, P->acap);
  wl_http_unblock(P->fields, P->fcap * sizeof *P->fields);
  wl_http_unblock(P->line, P->lcap);
  P->arena = P->line = NULL;
  P->fields = NULL;
  P->acap = P->fcap = P->lcap = 0;
  P->alen = P->span = P->nf = P->url_len = P->llen = 0;
  P->ntrail = (size_t)-1;
}

