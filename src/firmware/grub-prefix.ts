/**
 * The arm64 GRUB image is built (firmware/fetch.sh) with a placeholder prefix of fixed length.
 * GRUB 2.06 takes its TFTP server from the DHCP ACK, which beside a site DHCP server is not
 * us; with this appliance's address written into its prefix it reads its config from us in
 * every DHCP mode. The image is unsigned, so changing bytes breaks no signature.
 */

/** As firmware/fetch.sh passes it to grub-mkimage -p; long enough for any dotted IPv4. */
export const GRUB_PREFIX_PLACEHOLDER = '(tftp,000.000.000.000)/grub';

/** Images built with the placeholder: the TFTP server serves them with the prefix filled in. */
export const PREFIXED_IMAGES: ReadonlySet<string> = new Set(['grubaa64.efi']);

export function grubPrefix(address: string): string {
  return `(tftp,${address})/grub`;
}

/**
 * A copy of `image` whose prefix names `address`, NUL-padded to the placeholder's length (GRUB
 * reads it as a C string). Throws when the placeholder is not there exactly once: such an
 * image was not built by fetch.sh, and patching a guess could corrupt it.
 */
export function withGrubPrefix(image: Buffer, address: string): Buffer {
  const placeholder = Buffer.from(GRUB_PREFIX_PLACEHOLDER, 'latin1');
  const prefix = Buffer.from(grubPrefix(address), 'latin1');
  if (prefix.length > placeholder.length) throw new Error(`prefix ${grubPrefix(address)} is longer than the placeholder`);
  const at = image.indexOf(placeholder);
  if (at < 0) throw new Error(`no prefix placeholder ${GRUB_PREFIX_PLACEHOLDER} in the image`);
  if (image.indexOf(placeholder, at + 1) >= 0) throw new Error(`prefix placeholder ${GRUB_PREFIX_PLACEHOLDER} found more than once`);
  const out = Buffer.from(image);
  out.fill(0, at, at + placeholder.length);
  prefix.copy(out, at);
  return out;
}
