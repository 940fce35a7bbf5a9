import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..');
const read = (file: string): unknown => JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf-8'));

interface Extension {
  type: string;
  properties: Record<string, unknown>;
}
interface Package {
  name: string;
  consolePlugin: { name: string; exposedModules: Record<string, string> };
}
const pkg = read('package.json') as Package;
const extensions = read('console-extensions.json') as Extension[];

describe('plugin metadata', () => {
  it('names the plugin kubevirt-usb in package.json and consolePlugin', () => {
    expect(pkg.consolePlugin.name).toBe('kubevirt-usb');
    expect(pkg.name).toBe(pkg.consolePlugin.name);
  });

  it('refers only to exposed modules that exist', () => {
    const refs = JSON.stringify(extensions).match(/"\$codeRef":"([^"]+)"/g) ?? [];
    for (const ref of refs) {
      const module = ref.split('"')[3].split('.')[0];
      const file = pkg.consolePlugin.exposedModules[module];
      expect(file).toBeDefined();
      expect(fs.existsSync(path.join(ROOT, 'src', `${file}.tsx`))).toBe(true);
    }
  });

  it("adds the tab to KubeVirt's VirtualMachine and the page to the Virtualization section", () => {
    const tab = extensions.find((e) => e.type === 'console.tab/horizontalNav');
    expect(tab?.properties.model).toEqual({
      group: 'kubevirt.io',
      version: 'v1',
      kind: 'VirtualMachine',
    });
    const nav = extensions.find((e) => e.type === 'console.navigation/href');
    expect(nav?.properties).toMatchObject({ section: 'virtualization', href: '/usb-devices' });
    const route = extensions.find((e) => e.type === 'console.page/route');
    expect(route?.properties.path).toBe('/usb-devices');
  });
});
