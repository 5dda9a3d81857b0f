/**
 * The emulated machine, shared by the VM build (vm/lib/boot.ts, in Node) and the page
 * (lab-vm.ts): a saved state restores only into a machine with the very same devices and
 * memory, so both take their options from here.
 */

/** The serial port of each terminal, in lab.yaml order (ttyS0, ttyS1: IRQs 4 and 3). */
export const TERMINAL_PORTS = [0, 1] as const;

export interface MachineSize {
  memoryBytes: number;
  vgaMemoryBytes: number;
}

export function machineOptions(size: MachineSize): import('v86').V86Options {
  return {
    memory_size: size.memoryBytes,
    vga_memory_size: size.vgaMemoryBytes,
    // ttyS0 and ttyS1: the two terminals, on IRQs 4 and 3: two ports on one IRQ line lose
    // interrupts in v86, so no third UART. The control channel is the virtio console's
    // second port (hvc1): a virtqueue, not one interrupt per byte. The kernel's
    // console is the VGA text screen, which no reader sees.
    uart1: true,
    // WARNING: v86.d.ts types this as a ConsoleConfig, but `true` is what its docs say makes
    // the device with no adapter (the page attaches its own listeners).
    virtio_console: true as unknown as import('v86').ConsoleConfig,
    autostart: true,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    acpi: false,
  };
}
