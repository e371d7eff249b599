/**
 * A 'data' listener that hands over each complete line at once. readline would deliver them
 * later, possibly after the child's 'exit', and the crash tests count lines up to the kill.
 */
export function onLines(onLine: (line: string) => void): (chunk: string | Buffer) => void {
  let buf = '';
  return (chunk) => {
    buf += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
  };
}
