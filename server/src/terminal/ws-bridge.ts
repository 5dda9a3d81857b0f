/**
 * Joins one WebSocket to one Terminal: binary frames are raw bytes, text frames JSON
 * control messages (protocol.ts). Flow control both ways; the socket owns nothing but
 * itself: closing it detaches, the shell lives on for a reconnect.
 *
 * What a socket's control messages may cost is bounded here (see protocol.ts): malformed
 * messages and a flood of pings close it (1008), replies wait for no one whose send buffer
 * is full, and the heartbeat believes only answers to its own pings.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { ControlBudget } from './control-budget.ts';
import {
  CloseCode,
  CONTROL_BURST,
  CONTROL_FLOOD_LIMIT,
  CONTROL_RATE,
  HIGH_WATER,
  LOW_WATER,
  MAX_MALFORMED,
  POLICY_CLOSE_GRACE_MS,
  parseClientMessage,
  REPLY_BUFFER_LIMIT,
  REPLY_STALL_MS,
  type ServerMessage,
} from './protocol.ts';
import { type Scheduler, systemScheduler } from './scheduler.ts';
import type { Terminal, TerminalSink } from './terminal.ts';

const HEARTBEAT_MS = 25_000;
/** How often a socket that had to drop a reply is looked at again. */
const STALL_CHECK_MS = REPLY_STALL_MS / 10;
/** The terminal's messages that always go out: one per attach or exit, and the client needs them. */
const ALWAYS_SENT: ReadonlySet<ServerMessage['type']> = new Set(['attached', 'replayed', 'exit']);

export interface BridgeLog {
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface BridgeOptions {
  /** Time for the heartbeat, the control budget and the stall check (tests pass a fake). */
  scheduler?: Scheduler;
}

export function bridge(ws: WebSocket, term: Terminal, log: BridgeLog, opts: BridgeOptions = {}): void {
  const clock = opts.scheduler ?? systemScheduler;
  const budget = new ControlBudget({
    rate: CONTROL_RATE,
    burst: CONTROL_BURST,
    floodLimit: CONTROL_FLOOD_LIMIT,
    now: () => clock.now(),
  });
  let inFlight = 0;
  let sinkPaused = false;
  let malformed = 0;
  let dropped = 0;
  /** Set once we close or drop the socket: nothing it sends is read any more. */
  let ending = false;
  let stallSince: number | null = null;
  let cancelStall: (() => void) | null = null;
  let cancelGrace: (() => void) | null = null;
  let cancelBeat: (() => void) | null = null;

  const counts = () => ({ terminal: term.def.name, malformed, dropped });

  /** Closes for abuse; a peer that does not finish the closing handshake is cut soon. */
  const closeForPolicy = (reason: string) => {
    if (ending) return;
    ending = true;
    log.warn({ ...counts(), code: CloseCode.policy, reason }, 'closed a terminal socket');
    ws.close(CloseCode.policy, reason);
    cancelGrace = clock.after(POLICY_CLOSE_GRACE_MS, () => ws.terminate());
  };

  /** Cuts a socket that a close frame could not get through to. */
  const drop = (reason: string) => {
    if (ending) return;
    ending = true;
    log.warn({ ...counts(), reason }, 'dropped a terminal socket');
    ws.terminate();
  };

  const send = (data: Buffer | string, binary: boolean, onSent?: () => void) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(data, { binary }, onSent ? () => onSent() : undefined);
  };

  const checkStall = () => {
    cancelStall = null;
    if (stallSince === null || ending || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount <= REPLY_BUFFER_LIMIT) {
      stallSince = null;
    } else if (clock.now() - stallSince >= REPLY_STALL_MS) {
      drop('not reading');
    } else {
      cancelStall = clock.after(STALL_CHECK_MS, checkStall);
    }
  };

  /**
   * A message the peer can do without. WARNING: every reply a peer that does not read
   * provokes would stay in our memory; above REPLY_BUFFER_LIMIT unsent bytes (more than
   * output flow control ever lets in flight) it is dropped instead, and a socket still
   * that full REPLY_STALL_MS later is dropped too.
   */
  const reply = (msg: ServerMessage) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > REPLY_BUFFER_LIMIT) {
      dropped++;
      if (stallSince === null) {
        stallSince = clock.now();
        cancelStall = clock.after(STALL_CHECK_MS, checkStall);
      }
      return;
    }
    send(JSON.stringify(msg), false);
  };

  /** Takes from the control budget; false when the message must be ignored. */
  const spend = (): boolean => {
    const verdict = budget.take();
    if (verdict === 'flood') closeForPolicy('too many control messages');
    return verdict === 'ok';
  };

  const sink: TerminalSink = {
    output(chunk) {
      if (ws.readyState !== ws.OPEN) return;
      inFlight += chunk.length;
      send(chunk, true, () => {
        inFlight -= chunk.length;
        if (sinkPaused && inFlight < LOW_WATER) {
          sinkPaused = false;
          term.setSinkPaused(false);
        }
      });
      if (!sinkPaused && inFlight > HIGH_WATER) {
        sinkPaused = true;
        term.setSinkPaused(true);
      }
    },
    control(msg: ServerMessage) {
      if (ALWAYS_SENT.has(msg.type)) send(JSON.stringify(msg), false);
      else reply(msg);
    },
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
  };

  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    // ws still reads while a close is under way: what comes then is not acted on.
    if (ending || ws.readyState !== ws.OPEN) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      if (!term.input(buf)) {
        // The shell's input is backed up: stop reading the socket until it drains.
        ws.pause();
        term.onInputDrain(() => ws.resume());
      }
      return;
    }
    const msg = parseClientMessage(buf.toString('utf8'));
    if (!msg) {
      // The browser never sends one: a client that keeps doing so is not a reader.
      malformed++;
      if (malformed >= MAX_MALFORMED) {
        closeForPolicy('too many malformed control messages');
        return;
      }
      if (!spend()) return;
      log.warn({ terminal: term.def.name, bytes: buf.length }, 'ignored a malformed control message');
      reply({
        type: 'error',
        code: 'bad_message',
        message: 'Unknown or malformed control message; ignored.',
      });
      return;
    }
    switch (msg.type) {
      // Resize, pause and resume only set state, the latest wins: never budgeted, since
      // dropping one would leave a wrong size or a stalled terminal. The terminal bounds
      // the engine calls resizes make.
      case 'resize':
        term.resize(msg.cols, msg.rows);
        break;
      case 'pause':
        term.setClientPaused(true);
        break;
      case 'resume':
        term.setClientPaused(false);
        break;
      case 'ping':
        if (spend()) reply(msg.t === undefined ? { type: 'pong' } : { type: 'pong', t: msg.t });
        break;
    }
  });

  // WebSocket-level pings draw on the same budget. ws answers them itself and cuts a
  // socket with more than 60 of those answers unsent (its maxPendingAutoPongs), so they
  // cannot pile up in memory either.
  ws.on('ping', () => {
    if (ending || ws.readyState !== ws.OPEN) return;
    spend();
  });

  // A peer that vanished without a close frame would keep the terminal attached (and the
  // session safe from idle reaping) forever: ping it, drop it when it stops answering.
  // Only the answer to our own ping counts (a random payload, echoed back): a client
  // sending pongs of its own accord does not keep a dead connection alive.
  let awaiting: Buffer | null = null;
  ws.on('pong', (data: Buffer) => {
    if (awaiting && Buffer.isBuffer(data) && data.equals(awaiting)) awaiting = null;
  });
  const beat = () => {
    cancelBeat = null;
    if (awaiting) {
      ws.terminate();
      return;
    }
    awaiting = randomBytes(8);
    ws.ping(awaiting);
    cancelBeat = clock.after(HEARTBEAT_MS, beat);
  };
  cancelBeat = clock.after(HEARTBEAT_MS, beat);

  ws.on('close', () => {
    for (const cancel of [cancelBeat, cancelStall, cancelGrace]) cancel?.();
    cancelBeat = cancelStall = cancelGrace = null;
    term.detach(sink);
  });
  // Socket errors are logged once, by the app's WebSocket error handler (app.ts); the
  // socket then closes and 'close' detaches.
  ws.on('error', () => {});

  term.attach(sink);
}
