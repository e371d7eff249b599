/**
 * One DHCP pipeline for every mode: parse → classify → look up the machine → decide →
 * the mode's policy → encode and send → record. The policy is the only part that differs
 * between ProxyDHCP (67), the PXE boot server (4011) and full DHCP.
 */
import { resolveBootTarget, type BootSettings } from '../boot/decide.ts';
import { NO_MATCH, type MachineMatch } from '../boot/machine.ts';
import type { Mac } from '../net/mac.ts';
import type { Uuid } from '../net/uuid.ts';
import { classifyClient } from './classify.ts';
import { messageTypeName } from './options.ts';
import { BOOTREQUEST, encodePacket, tryParsePacket } from './packet.ts';
import type { DhcpPolicy, Exchange } from './policy.ts';
import type { DhcpRecorder } from './recorder.ts';
import { echoRequestOptions, fitReply, replyLimit } from './reply-encoding.ts';
import type { Destination, Peer } from './transport.ts';

/** What the store knows of a machine, keyed as /ipxe keys it. */
export type MachineLookup = (query: { mac: Mac; uuid: Uuid | undefined }) => MachineMatch;

export type DhcpSend = (bytes: Buffer, to: Destination) => Promise<void>;

export interface DhcpPipelineDeps {
  boot: BootSettings;
  lookup: MachineLookup;
  recorder: DhcpRecorder;
  send: DhcpSend;
}

export class DhcpPipeline {
  constructor(
    readonly policy: DhcpPolicy,
    private readonly deps: DhcpPipelineDeps,
  ) {}

  /** The socket handler: never throws for anything a packet contains. */
  async handle(data: Buffer, from: Peer): Promise<void> {
    const { recorder } = this.deps;
    const parsed = tryParsePacket(data);
    if (!parsed.ok) return recorder.malformed(parsed.reason, from, data.length);
    const request = parsed.packet;
    const type = messageTypeName(request.options.messageType());
    if (request.op !== BOOTREQUEST) return recorder.unusable('not-request', request, type, from, `op ${request.op} is a reply, not a request`);
    const client = classifyClient(request);
    if (!client) return recorder.unusable('not-ethernet', request, type, from, `hardware type ${request.htype}/length ${request.hlen} is not Ethernet`);

    // Only a machine that boots needs its config looked up (in proxy mode, most packets are laptops).
    const machine = client.arch === undefined ? NO_MATCH : this.deps.lookup({ mac: client.mac, uuid: client.uuid });
    const ex: Exchange = { request, client, type, from, target: resolveBootTarget(client, this.deps.boot, machine) };
    const ip = this.policy.clientAddress(ex);
    recorder.request(ex, ip);
    // ProxyDHCP and 4011 answer at once; only full DHCP waits (for its lease file).
    const pending = this.policy.answer(ex);
    const answer = pending instanceof Promise ? await pending : pending;
    if (answer.kind === 'handled') return;
    if (answer.kind === 'ignore') return recorder.ignored(ex, answer);

    echoRequestOptions(answer.packet, request);
    let bytes: Buffer;
    // Set only when the reply had to be cut down to the client's size (the rare, slow path).
    let fitted: string | undefined;
    try {
      bytes = encodePacket(answer.packet);
      const limit = replyLimit(request);
      if (bytes.length > limit) {
        const fit = fitReply(answer.packet, request, limit);
        bytes = fit.bytes;
        fitted = fit.how;
      }
    } catch (err) {
      return recorder.unbuildable(ex, err);
    }
    try {
      await this.deps.send(bytes, answer.to);
    } catch (err) {
      return recorder.sendFailed(ex, answer.type, answer.to, err);
    }
    recorder.replied(ex, answer, ip, fitted);
  }
}
