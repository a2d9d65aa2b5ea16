// api.js is the public HTTP API as the pages use it: the same routes and
// keys as any client. A key travels only in the Authorization header,
// never in a URL.

// ApiError is an answer with a non-2xx status; problem is its RFC 9457
// body (an empty object when the body was not JSON).
export class ApiError extends Error {
  constructor(status, problem) {
    const p = problem && typeof problem === 'object' ? problem : {};
    super(p.detail || p.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = p;
  }

  // fieldErrors are the problem's errors[] ({field, message}), or [].
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

// NetworkError means no answer arrived: offline, server down, connection
// cut.
export class NetworkError extends Error {
  constructor(cause) {
    super('no connection to the server');
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

// request sends one call and answers {status, data, headers}; it throws
// ApiError for a non-2xx answer and NetworkError when none came. body is
// sent as JSON, or as is when it is a string (an uploaded file, say).
export async function request(key, method, path, {body, headers = {}, signal} = {}) {
  const h = {Accept: 'application/json, application/problem+json', ...headers};
  if (key) h.Authorization = `Bearer ${key}`;
  let payload;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  let text;
  try {
    res = await fetch(path, {method, headers: h, body: payload, signal, cache: 'no-store', credentials: 'omit'});
    text = await res.text();
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new NetworkError(err);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return {status: res.status, data, headers: res.headers};
}

// call is request's data alone.
export async function call(key, method, path, opts) {
  return (await request(key, method, path, opts)).data;
}

// seg escapes one path segment (a store id may hold dots).
export const seg = (s) => encodeURIComponent(s);

// randomKey is an Idempotency-Key; crypto.randomUUID needs a secure
// context, which a tablet on plain HTTP in a shop's LAN is not.
export function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
