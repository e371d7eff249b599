/** How values in a boot config name things on this appliance: `{{base_url}}`, and paths without a scheme. */

/** Replaced in kernel, initrd and cmdline values by --base-url, so data files need not hard-code the appliance's address. */
export const BASE_URL_PLACEHOLDER = '{{base_url}}';

export function substituteBaseUrl(value: string, baseUrl: string): string {
  return value.replaceAll(BASE_URL_PLACEHOLDER, baseUrl);
}

/**
 * Kernel and initrd paths without a scheme live on this appliance: `/images/x` and
 * `images/x` both become `<base-url>/images/x` (base-url may carry a path prefix, so
 * this is concatenation, not URL resolution against the host root).
 */
export function resolveAssetUrl(ref: string, baseUrl: string): string {
  const value = substituteBaseUrl(ref, baseUrl);
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return value;
  return `${baseUrl.replace(/\/+$/, '')}/${value.replace(/^\/+/, '')}`;
}
