/**
 * A plain-language line for a CDT procedure code, for patients: the exact wording of a few common
 * codes, else what the code's category does. The clinician's own description stays the title.
 */
const COMMON: Record<string, string> = {
  D0120: 'A regular check-up exam.',
  D0150: 'A full first exam of your teeth and gums.',
  D0210: 'A full set of X-rays of your mouth.',
  D0274: 'X-rays that show the back teeth from the side (bitewings).',
  D0330: 'One X-ray that shows your whole mouth and jaws.',
  D1110: 'A professional cleaning.',
  D1206: 'Fluoride varnish to protect the enamel.',
  D1351: 'A sealant: a thin coating that protects the chewing surface.',
  D2140: 'A silver-coloured (amalgam) filling.',
  D2330: 'A tooth-coloured filling on a front tooth.',
  D2391: 'A tooth-coloured filling on a back tooth.',
  D2740: 'A crown: a cap that covers the whole tooth, made of porcelain or ceramic.',
  D2750: 'A crown: a cap that covers the whole tooth, porcelain over metal.',
  D2950: 'A core buildup: rebuilding the tooth so a crown can hold.',
  D3310: 'A root canal on a front tooth: cleaning and sealing the inside of the tooth.',
  D3320: 'A root canal on a premolar: cleaning and sealing the inside of the tooth.',
  D3330: 'A root canal on a molar: cleaning and sealing the inside of the tooth.',
  D4341: 'Deep cleaning below the gum line (four or more teeth in one area).',
  D4342: 'Deep cleaning below the gum line (one to three teeth in one area).',
  D4910: 'A gum maintenance cleaning after deep cleaning.',
  D6010: 'An implant post placed in the jawbone to replace a tooth root.',
  D6065: 'A crown on an implant.',
  D7140: 'Taking out a tooth (simple extraction).',
  D7210: 'Taking out a tooth surgically.',
  D9110: 'Emergency treatment to relieve pain.',
  D9944: 'A night guard to protect your teeth from grinding.',
};

const CATEGORIES: [RegExp, string][] = [
  [/^D0/, 'An exam or X-rays.'],
  [/^D1/, 'Preventive care: cleaning or protection.'],
  [/^D2/, 'Repairs a tooth: a filling, crown or similar.'],
  [/^D3/, 'Treats the inside of the tooth (for example a root canal).'],
  [/^D4/, 'Treats the gums and the bone around the teeth.'],
  [/^D5/, 'Removable teeth: dentures or partials.'],
  [/^D6/, 'Implants or a bridge to replace missing teeth.'],
  [/^D7/, 'Oral surgery, such as taking out a tooth.'],
  [/^D8/, 'Orthodontics: straightening teeth.'],
  [/^D9/, 'Other care, such as numbing, sedation or a night guard.'],
];

export function plainLanguage(cdt: string): string {
  const code = cdt.trim().toUpperCase();
  return COMMON[code] ?? CATEGORIES.find(([re]) => re.test(code))?.[1] ?? '';
}
