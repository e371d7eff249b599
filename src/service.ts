/** A long-running part of the appliance (HTTP, TFTP, DHCP, the store's watcher), started and stopped by the Appliance. */
export interface Service {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}
