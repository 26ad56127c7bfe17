import QRCode from 'qrcode';

/**
 * A QR code as inline SVG, drawn on the server (no image request, no third party). Only for text the
 * server made (a patient link, an otpauth URI): the SVG is inserted unescaped.
 */
export function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}
