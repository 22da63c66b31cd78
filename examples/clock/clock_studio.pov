// The clock as a studio's own scene names its files: by their central
// storage paths under /studio. No render server has a /studio; inside the
// I/O wrapper the job's files are mounted there ([[central]] in
// clock_outsourced.toml), and the frames written to /studio/renders/...
// land in the job's secure location.
#declare PartsFile = "/studio/assets/clock/clock_parts.inc";
#declare DialTexture = "/studio/assets/clock/textures/dial.png";
#include "/studio/assets/clock/clock.pov"
