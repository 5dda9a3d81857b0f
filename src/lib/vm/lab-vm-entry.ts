/**
 * The in-browser mode's chunk, imported by lab-controller.ts only when a reader runs a lab
 * in the browser: the emulator (v86, ~100 KB gzipped, its wasm fetched apart), the VM
 * runtime and the server's parsers and judge it reuses. Nothing of it loads otherwise.
 */
export { LabVm } from './lab-vm.ts';
export { deviceRefusal } from './vm-files.ts';
