// sse.js reads a Server-Sent Events stream from a fetch Response, so the
// key stays in the Authorization header (EventSource cannot send one).

// readEvents calls onEvent(name, data) for each message and onActivity()
// whenever bytes arrive (heartbeat comments included), so a watchdog can
// tell a quiet stream from a dead one. It resolves when the server ends
// the stream and rejects when the connection breaks.
export async function readEvents(res, onEvent, onActivity = () => {}) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let name = '';
  let data = [];
  const line = (l) => {
    if (l === '') {
      if (data.length > 0) onEvent(name || 'message', data.join('\n'));
      name = '';
      data = [];
      return;
    }
    if (l.startsWith(':')) return; // a comment: connected, keep-alive
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? '' : l.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  };
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      onActivity();
      buf += decoder.decode(value, {stream: true});
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        // A lone \r at the end may be the first half of \r\n.
        if (!m || (m[0] === '\r' && m.index === buf.length - 1)) break;
        line(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
