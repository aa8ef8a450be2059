/*
** http_parse.h: the parser engine of http_parse.c, for its Lua face in
** http.c (and the fuzz harness): a parser_t is fed bytes by wl_hp_run and
** says what they made, one event at a time.
*/
#ifndef WL_HTTP_PARSE_H
#define WL_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

/* What one llhttp run produced, and what wl_hp_run() returns. */
enum { EV_MORE, EV_HEAD, EV_BODY, EV_END, EV_ERROR };

/* Scanner states. The head states also scan trailer sections. */
enum {
  S_START, S_START_CR, S_LINE, S_LINE_CR,
  S_FIELD, S_NAME, S_VALUE, S_VALUE_CR, S_END_CR,
  S_BODY,                      /* Content-Length or EOF body: llhttp alone */
  S_CSIZE, S_CSIZE_D, S_CEXT, S_CLINE_CR, S_CDATA, S_CDATA_CR, S_CDATA_LF,
  S_TEND,                      /* trailers seen, llhttp must end the message */
  S_CLOSED,                    /* after a message that ends the connection */
  S_DEAD
};

/* scan() results: all scanned, stop at a boundary llhttp must reach too,
   stop before a bare LF (llhttp gets a CR first), stop at a bad byte. */
enum { SC_MORE, SC_SYNC, SC_INJECT, SC_ERROR };

/* How far the method of a request line has been seen (for 501 vs 400). */
enum { M_IN, M_SP, M_BAD };

typedef struct field_t { size_t name, nlen, value, vlen; } field_t;

typedef struct parser_t {
  llhttp_t h;                  /* first, so callbacks cast it back */
  size_t max_line, max_header_bytes, max_headers, max_chunk_ext;
  uint64_t max_body;
  int head_response;
  /* scanner */
  int st, lf_ok, trailers, method_st, sync_end;
  size_t line_len, sect_bytes, nfields, ext_len, mlen;
  uint64_t csize, cleft, body_total;
  /* set by llhttp callbacks during one llhttp_execute */
  int ev;
  const char *body_at;
  size_t body_len;
  /* between calls */
  int paused, pending_end, closing, bad_method;
  int end_paused;              /* paused in on_message_complete */
  /* the head as it is parsed: spans copied into one arena, so a head split
     over many recvs needs no per-callback allocation */
  char *arena;
  size_t alen, acap, span, fname, fnlen, url, url_len, ntrail;
  field_t *fields;
  size_t nf, fcap;
  char *line;                  /* raw start line, for logs */
  size_t llen, lcap;
  int later_minor;             /* HTTP/1.2..1.9 sent, served as 1.1: 2..9 */
  int line_done;               /* the start line has ended */
  /* head facts computed in on_headers_complete */
  int keep_alive, expect, upgrade;
  int head_end;                /* this head ends its message: no body */
  uint64_t clen;
  /* the error, once dead */
  int status, sstatus;         /* sstatus: the scanner's, until applied */
  const char *reason, *sreason;
  char rbuf[96];
} parser_t;

/* Runs over [p, end) until one event is ready; *next: where to go on. */
int wl_hp_run(parser_t *P, const char *p, const char *end, const char **next);
/* At EOF: the event the end of the stream makes, EV_MORE for none. */
int wl_hp_eof(parser_t *P);
/* For a new stream (limits and type kept). wl_hp_free gives the head's
   buffers back: at the end, or between two messages (nothing of the last
   head is kept then; the next one takes new buffers). */
void wl_hp_reset(parser_t *P);
void wl_hp_free(parser_t *P);

#endif
