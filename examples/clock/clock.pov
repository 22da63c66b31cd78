// frameflow example: a wall clock whose hands sweep one turn over the
// animation, its dial an image map (textures/dial.png) and its parts from an
// include file (clock_parts.inc). Uses `clock` 0..1 over the job's frames.
// clock_studio.pov renders the same scene naming both files by their
// central storage paths (PartsFile, DialTexture).
#version 3.7;
#ifndef (PartsFile) #declare PartsFile = "clock_parts.inc"; #end
#ifndef (DialTexture) #declare DialTexture = "textures/dial.png"; #end
#include PartsFile
global_settings { assumed_gamma 1.0 }
camera { location <0.6*sin(clock*pi), 0.3, -3.2> look_at <0, 0, 0> }
light_source { <3, 4, -5> color rgb 1.1 }
light_source { <-4, 1, -3> color rgb 0.4 shadowless }
plane { z, 0.15 pigment { checker color rgb <0.55, 0.5, 0.45> color rgb <0.45, 0.4, 0.35> scale 0.4 } }
// Dial: a disc with the image mapped across it.
cylinder { <0, 0, 0>, <0, 0, 0.1>, 1
  pigment { image_map { png DialTexture once } translate <-0.5, -0.5, 0> scale 2 }
  finish { ambient 0.2 diffuse 0.8 } }
torus { 1.0, 0.07 rotate x*90 pigment { Brass } finish { BrassFinish } }
object { ClockHand(0.85, 0.025, 360*clock) }
object { ClockHand(0.55, 0.04, 30*clock) }
sphere { <0, 0, -0.1>, 0.06 pigment { Brass } finish { BrassFinish } }
